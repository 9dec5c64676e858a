"""Console entry points: one module per script, all run through :func:`metarl.cli.app.run_app`."""
