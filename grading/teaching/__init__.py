"""Teaching collections: de-identified cases, students' attempts, scores (issue 5, item 2)."""
