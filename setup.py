"""Packaging glue that pyproject.toml cannot express: the top-level data folders ``registry/``
and ``cards/`` ship inside the wheel as the packages ``ganzoo._registry`` and ``ganzoo._cards``,
so an installed ganzoo finds them with ``importlib.resources`` exactly like an editable checkout.
The bundled starter zoo (``ganzoo/bundled/NAME/``: config, weights, sample grid) ships as package
data of ``ganzoo``."""

from setuptools import find_packages, setup

DATA_PACKAGES = {"ganzoo._registry": "registry", "ganzoo._cards": "cards"}

setup(
    packages=find_packages(include=["ganzoo", "ganzoo.*"]) + list(DATA_PACKAGES),
    package_dir={"": ".", **DATA_PACKAGES},
    package_data={
        "ganzoo": ["py.typed", "bundled/*/*.json", "bundled/*/*.safetensors", "bundled/*/*.png"],
        "ganzoo._registry": ["*.toml", "*.md", "classes/*.txt"],
        "ganzoo._cards": ["*.md", "*.jinja", "*.j2"],
    },
)
