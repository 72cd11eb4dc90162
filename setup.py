"""The one compiled module, issuer._wrap (the rest of the build is in pyproject.toml).

Optional: where it cannot be built (no C compiler, no OpenSSL headers) the install goes
on without it, and issuing uses its Python paths (issuer/compiled.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "issuer._wrap",
            sources=["issuer/_wrap.c"],
            libraries=["crypto"],  # OpenSSL's SHA-256, the library CPython's hashlib uses
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
