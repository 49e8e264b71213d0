"""Second opinions: a clinician asks a colleague or a site about one study."""
