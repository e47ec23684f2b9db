"""One module per Azure resource kind; each holds everything known about its resource.

See `base.ResourceStep` for what a module provides, and `app.services.plan` for
the one function that picks them for a spec.
"""
