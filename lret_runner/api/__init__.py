"""The REST API of lret_runner and its natural-language front door.

- :mod:`.nl`: a deterministic parser from a request in plain words ("a 10 qubit ghz circuit
  with 1% depolarizing noise") to an experiment request and the runner's overrides;
- :mod:`.models`, :mod:`.service`, :mod:`.app`: the HTTP API (FastAPI), imported only by
  the code that serves it: importing this package loads nothing heavy.
"""
