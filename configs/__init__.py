"""The training configs that ship with nst: installed as the `train.configs` package (pyproject.toml maps this
folder there), so `nst train -c starry_night` finds them by name; the YAML files are the content."""
