"""Teaching material: one card per method (`cards`) and the seed's toy networks (`toy`) the Axioms page runs."""
