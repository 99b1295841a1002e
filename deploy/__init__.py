"""Deployment manifests (Kubernetes, compose) rendered from the service's settings: see render.py."""
