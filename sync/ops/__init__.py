"""Operations: what an administrator sees and steers (the ops HTTP API in function_app.py and
the `python -m sync.ops` command line), who may (`auth`: Entra ID app roles) and the record of who
did (`audit`), and the disconnect the staff worker carries out."""
