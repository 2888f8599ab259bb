"""Local development stack: the Functions host, Azurite launcher and the Graph/Coconut emulators.

Never deployed (see .funcignore).
"""
