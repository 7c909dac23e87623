"""Station simulator and benchmark harness (``make bench``). See bench/README.md."""
