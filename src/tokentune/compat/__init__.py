"""The private APIs of tokentune's dependencies, one module per dependency.

Where a library offers no public way to do what tokentune needs, the private name is used here
and nowhere else; tests/compat/ checks each one against the installed version, so an upgrade
that moves it fails there with the name and the version, not deep inside a run.
"""
