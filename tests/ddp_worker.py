"""Train a few steps and save the losses and averaged gradients of each (rank 0): run alone, or under torchrun.

python tests/ddp_worker.py OUT.pt STEPS key=value ...   (the keys of `t2l train --set`)
"""
import sys

import torch

from t2l_fast.training import distributed
from t2l_fast.training.config import load_config
from t2l_fast.training.trainer import Trainer


def main(out: str, steps: int, overrides) -> None:
    trainer = Trainer(load_config(None, overrides))
    trainer.model.train()
    losses, grads, epoch = [], [], 0
    while len(losses) < steps:
        trainer.loader.set_epoch(epoch)
        for micro_batches in trainer.step_batches():
            if len(losses) == steps:
                break
            losses.append(trainer.train_step(micro_batches))
            grads.append(torch.cat([p.grad.reshape(-1) for p in trainer.model.learnable_parameters()]))
        epoch += 1
    if trainer.dist.is_main:
        torch.save({"losses": losses, "grads": torch.stack(grads)}, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
