from zhike.cli.main import app

app()
