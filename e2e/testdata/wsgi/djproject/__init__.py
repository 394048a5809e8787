"""A minimal Django project for e2e/wsgi_test.go: settings.py, urls.py,
views.py, wsgi.py (the WSGI entry point: djproject.wsgi:application)."""
