"""Tests of the `tfnas.data` package, one module per package module.

Not named ``tests/data``: that directory holds vendored data files. A package, so that the
test modules can share `helpers` and their names cannot clash with other test modules.
"""
