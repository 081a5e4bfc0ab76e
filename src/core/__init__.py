"""The domain core: values, ports and use cases.

Imports only the standard library and attrs (a unit test keeps it so): no
I/O, no frameworks, no adapters.
"""
