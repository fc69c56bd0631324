"""Files in and out: SBML export and import, atomic writes.

- :mod:`.sbml`: export a model as SBML Level 3 (and the shared SBML helpers);
- :mod:`.sbml_import`: import an SBML file as a her2sim model;
- :mod:`.atomic`: write a file or folder atomically (temporary name, then rename).
"""
