"""Several processes, one run: the torch.distributed communicator (:mod:`.distributed`, no
pinnsolve imports but the errors and devices) and the collocation points split over ranks
(:mod:`.sharding`, over the objective and the Gauss–Newton residuals)."""
