"""The Flask "hello" app of bench/wsgi/run.sh, served the same way by
python/blastbeat (behind blastbeat) and by gunicorn (behind nginx)."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
