"""One module per subcommand: a plain function that returns an exit code."""
