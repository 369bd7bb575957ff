"""A job for tests that need a job running when its worker dies (imported by a real `flask worker`)."""
import time


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "rested"
