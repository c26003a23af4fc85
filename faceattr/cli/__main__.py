from faceattr.cli import app

app()
