"""``metarl-evaluate``'s config, apart from the other groups: here ``objective=``, ``optimizer=`` and ``env=`` are values."""
