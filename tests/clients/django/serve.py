"""Creates the database, then serves the app on 127.0.0.1:$PORT with the
standard library's threaded WSGI server (see settings.py for the
environment)."""
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


django.setup()
call_command("migrate", interactive=False, verbosity=0)
make_server("127.0.0.1", int(os.environ["PORT"]), get_wsgi_application(), Server, WSGIRequestHandler).serve_forever()
