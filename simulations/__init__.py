"""Simulation studies of gfgsm, one module each, registered under ``gfgsm.studies``."""
