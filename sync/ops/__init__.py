"""Operations: what an administrator sees and steers (the ops HTTP API in function_app.py and
the `python -m sync.ops` command line), and the disconnect the staff worker carries out."""
