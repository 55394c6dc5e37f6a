"""Self-distillation of the latent 3DGS decoder from a video teacher's own outputs (README "Train your own decoder").

* :mod:`~lyra.distill.data` - SDG folders as a dataset, input/target sampling;
* :mod:`~lyra.distill.losses` - MSE, LPIPS-VGG (local weights only), SSI depth, opacity;
* :mod:`~lyra.distill.student` - conditioning, decoding, rendering the targets;
* :mod:`~lyra.distill.train` - the loop (stages, checkpoints, exact resume, DDP);
* :mod:`~lyra.distill.evaluate` - PSNR, SSIM, LPIPS, depth abs-rel, Chamfer;
* :mod:`~lyra.distill.make_data`, :mod:`~lyra.distill.gen3c_data` - teacher data, sharded and resumable;
* :mod:`~lyra.distill.config` and ``presets/`` - YAML configs.
"""
