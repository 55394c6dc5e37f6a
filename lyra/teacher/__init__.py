"""Every teacher, in one home: GEN3C on diffusers (the 3D cache, the official sampler), the lift teacher,
the synthetic teacher, and the protocol they follow.

* :mod:`lyra.teacher.base` - :class:`Teacher` protocol, :class:`TeacherOutput`, :class:`TrajectoryOutput`;
* :mod:`lyra.teacher.lift` - :class:`LiftTeacher`, a CPU preview of the trajectories (the lifted input rendered);
* :mod:`lyra.teacher.synthetic` - procedural scenes with known geometry (tests, smoke training, make-data);
* :mod:`lyra.teacher.gen3c` - ``load_transformer``, ``encode_warped_frames``, ``sample`` (GEN3C_SPEC.md section 11);
* :mod:`lyra.teacher.cache3d` - the 3D cache (:mod:`~lyra.teacher.warp` splatting, :mod:`~lyra.teacher.occlusion`);
* :mod:`lyra.teacher.teacher` - :class:`Gen3CTeacher`, :func:`load_gen3c_teacher` (from the model registry);
* :mod:`lyra.teacher.text` - T5 prompt embeddings or zeros; :mod:`lyra.teacher.memory` - memory modes.

Heavy modules (diffusers, transformers) are imported only where used.
"""

from lyra.teacher.base import Teacher, TeacherOutput, TrajectoryOutput

__all__ = ["Teacher", "TeacherOutput", "TrajectoryOutput"]
