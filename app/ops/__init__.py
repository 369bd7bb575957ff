"""Operations: health checks, queue depths, workers, the scheduler heartbeat."""
