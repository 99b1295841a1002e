"""``make bench``: every benchmark, each printing its figures beside its target."""

from bench import scoring

scoring.main()
