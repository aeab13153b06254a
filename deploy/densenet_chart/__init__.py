"""The Helm chart's generated files: values.schema.json from values.yaml's comments, and the
copy of the CRD from the top-level crds/. `make chart` writes them; tests/deploy checks them."""
