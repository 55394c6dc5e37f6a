"""Bundled demo scenes and the deterministic script that builds them (see scenes.build_demo)."""
