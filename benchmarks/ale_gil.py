"""Does ALE hold the GIL while it emulates? A pure-Python loop's speed beside a thread stepping Breakout.

The DQN loop's ``vector_mode: thread`` steps the env copies in a background thread while the
learner runs; if the emulator kept the GIL, every Python line of the learner (replay sampling,
the calls into TensorFlow) would wait for it. This times a pure-Python counting loop alone and
then beside a thread that calls ``ale.act`` in a loop (resetting the game when it ends), and
prints the loop's speed beside the thread as a fraction of its speed alone, with the share of
the thread's time spent inside ``ale.act``. About 1.0: ALE releases the GIL; about 0.5 with the
thread inside ``ale.act`` nearly all the time: ALE holds it (on two or more free cores)."""

from __future__ import annotations

import argparse
import threading
import time


def count_for(seconds: float) -> int:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each timed loop")
    ap.add_argument("--game", default="ALE/Breakout-v5")
    args = ap.parse_args()

    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make(args.game, frameskip=1)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    alone = count_for(args.seconds)
    stop = threading.Event()
    inside = {"s": 0.0, "frames": 0}

    def stepper() -> None:
        while not stop.is_set():
            if ale.game_over():
                ale.reset_game()
            t = time.perf_counter()
            for _ in range(100):
                ale.act(1)  # FIRE: the game goes on (a ball is served after every lost life)
            inside["s"] += time.perf_counter() - t
            inside["frames"] += 100

    t0 = time.perf_counter()
    th = threading.Thread(target=stepper)
    th.start()
    beside = count_for(args.seconds)
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    env.close()
    print(f"pure-Python loop beside a thread stepping {args.game}: {beside / alone:.2f} of its speed alone")
    print(f"the thread spent {inside['s'] / wall:.0%} of its time inside ale.act "
          f"({inside['frames']} frames, {1e6 * inside['s'] / inside['frames']:.0f} us per frame)")


if __name__ == "__main__":
    main()
