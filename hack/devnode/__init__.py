"""Node runner for the local cluster: runs the pods bound to its Node as local processes, each in
its own network and mount namespace (development and test infrastructure, not the product).

Import nothing heavy here: the in-namespace shim is started for every container.
"""
