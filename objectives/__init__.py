"""The training objectives of SpeedNet and RSPNet, as pure losses over embeddings and logits.

- ``speednet.speed_loss``: binary cross-entropy, normal (0) against sped up (1), SpeedNet section 3.
- ``rsp.rsp_loss``: RSPNet's relative speed perception triplet on cosine similarity (gamma 0.15),
  and ``rsp.speed_classification_loss``, the SP ablation of its table 1.
- ``avid.info_nce``: A-VID's InfoNCE of a query against its key and a queue of negatives (tau 0.07;
  the queue of K 16384 keys and the momentum encoder, m 0.999, belong to ``models.rspnet``).

Every function takes tensors and returns a scalar loss; models, heads and the training loop live
elsewhere, so each loss is tested against hand-computed values.
"""
