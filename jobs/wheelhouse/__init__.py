"""Wheelhouses: the project's wheels carried to a GPU cluster that cannot reach a package registry.

On a connected machine, from the checkout::

    python -m jobs.wheelhouse build OUT --python 3.12 --extra gpu [--platform manylinux_2_28_x86_64]

resolves the project with the extra for the cluster's Python and platform (not this machine's),
leaves out what the cluster image already has (``--image-has``, torch by default: see ``closure``
for the rule), downloads the other wheels and the project's build requirements, splits every file
bigger than ``--part-size`` (60 MiB) into parts and writes ``manifest.json`` (``manifest``). Copy OUT
to the cluster, then from the checkout there::

    python -m jobs.wheelhouse install OUT          # --check: verify only

checks every part and joined wheel against the manifest and runs ``pip install --no-index -e
'.[extra]'``. This package imports only the standard library, so it runs from a plain checkout before
the project is installed. Modules: ``target`` (platform tags and markers of the target), ``closure``
(what ships), ``sizes``, ``manifest``, ``parts`` (split and join) are the logic; ``pip_commands``,
``build`` and ``install`` the shell around pip and the disk.
"""
