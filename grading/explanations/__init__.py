"""Patient explanations: a page and a one-page PDF a doctor makes for a patient."""
