"""Standard Responses: groups of canned replies that agents insert in the composer."""
