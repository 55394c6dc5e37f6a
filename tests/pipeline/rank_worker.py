"""One rank of a multi-rank generation for tests/pipeline/test_teach_ranks.py (run as a script, not collected).

``python rank_worker.py SPEC.json`` with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
runs the request of the spec through :func:`lyra.pipeline.request.run` with the tiny random tokenizer and
decoder and the lift teacher. With ``die_at`` in the spec, rank ``die_rank`` kills itself (SIGKILL) when the
teacher is asked for that trajectory, as a crashed or preempted rank would end.
"""

import json
import os
import signal
import sys

from lyra.model.checkpoint import load_decoder
from lyra.model.tokenizer import load_cosmos_tokenizer
from lyra.pipeline.lift import lift_image
from lyra.pipeline.request import GenerateRequest, run
from lyra.pipeline.teach import end_ranks
from lyra.teacher.lift import LiftTeacher


class MortalLiftTeacher(LiftTeacher):
    def __init__(self, tokenizer, die_at: str | None, die_rank: int):
        super().__init__(tokenizer, lift_image)
        self.die_at, self.die_rank = die_at, die_rank

    @property
    def identity(self) -> dict:
        return {**super().identity, "class": "LiftTeacher"}  # the same key whether it may die or not

    def generate(self, image, trajectories, *, names=None, **kwargs):
        if names and names[0] == self.die_at and int(os.environ.get("RANK", "0")) == self.die_rank:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().generate(image, trajectories, names=names, **kwargs)


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    vae = load_cosmos_tokenizer(spec["vae"])
    teacher = MortalLiftTeacher(vae, spec.get("die_at"), spec.get("die_rank", 1))
    try:
        result = run(GenerateRequest.from_yaml(spec["request"]), teacher=teacher, decoder=load_decoder(spec["decoder"]),
                     tokenizer=vae)
    finally:
        end_ranks()
    print(json.dumps({"rank": int(os.environ.get("RANK", "0")), "result": None if result is None else len(result)}))


if __name__ == "__main__":
    main()
