"""The C extensions only; all metadata is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("surgery._farmhash", ["surgery/_farmhash.c"], extra_compile_args=["-O3"]),
        Extension("surgery._wire", ["surgery/_wire.c"], extra_compile_args=["-O3"]),
        Extension("surgery._textformat", ["surgery/_textformat.c"], extra_compile_args=["-O3"]),
    ]
)
