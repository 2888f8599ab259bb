"""A local stand-in for the Microsoft Graph v1.0 calendar subset the service uses."""
