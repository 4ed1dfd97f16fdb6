"""Great Expectations validation: suites, exact Arrow metrics per chunk, GE's judgement, the gate."""
