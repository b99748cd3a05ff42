"""`make bench`: the cost of observability and the gain of batching, measured with wrk."""
