"""Hidden checks of the course assignments: other sizes and edge cases of what each visible check in `mtssl_nb.grade`
tests, so that an answer written to pass the visible case only does not earn the question. Each reuses the visible
check's helper with other inputs; a question's points need its visible check and all of these."""
import torch

from mtssl_nb.grade import (_check_anneal, _check_boxes, _check_contract, _check_dist, _check_extent, _check_label, _check_mirror,
                            _check_nearest, _check_rotate, _check_soft, _check_triplet, close, hidden, Wrong)

# Assignment 1: relative position labels
@hidden("relpos_labels", "Q1 grid_extent")
def extent_other_sizes(ns): _check_extent(ns, [(24, 12, 3), (32, 0, 0), (10, 5, 2), (1, 0, 0)])

@hidden("relpos_labels", "Q2 neighbour_boxes")
def boxes_other_sizes(ns): _check_boxes(ns, [(24, 12, 3), (32, 0, 0), (10, 5, 2)], seed=5)

@hidden("relpos_labels", "Q3 label_of_offset")
def label_other_sizes(ns): _check_label(ns, [(24, 12), (7, 0), (1, 1)], centre=False)

@hidden("relpos_labels", "Q4 mirror_label")
def mirror_any_shape(ns): _check_mirror(ns, torch.randint(0, 8, (5, 7), generator=torch.Generator().manual_seed(4)))

# Assignment 2: soft encoding
@hidden("soft_encoding", "Q1 nearest_bins")
def nearest_other_k(ns): _check_nearest(ns, [(1, 0, (1, 2, 3, 7)), (8, 2, (3, 2, 1, 1))])

@hidden("soft_encoding", "Q2 soft_encode")
def soft_other_k(ns): _check_soft(ns, [(3, 10.0, 13), (1, 5.0, 11)])

@hidden("soft_encoding", "Q3 annealed_mean_ab")
def anneal_other_t(ns): _check_anneal(ns, [1.0, 0.05], seed=8)  # T = 0.05: a naive exp(logits / T) overflows

# Assignment 3: triplet loss
@hidden("triplet_loss", "Q1 unit_distances")
def dist_other_sizes(ns): _check_dist(ns, [(4, 3, 5, 16), (9, 1, 2, 3)])

@hidden("triplet_loss", "Q2 triplet_loss_all")
def all_other_sizes(ns): _check_triplet(ns, "triplet_loss_all", "all", ((5, 3), (2, 4)))

@hidden("triplet_loss", "Q3 triplet_loss_hard")
def hard_other_sizes(ns): _check_triplet(ns, "triplet_loss_hard", "hard", ((5, 3), (2, 4)))

@hidden("triplet_loss", "Q4 triplet_loss_semihard")
def semihard_other_sizes(ns): _check_triplet(ns, "triplet_loss_semihard", "semi-hard", ((5, 3), (2, 4)))

# Assignment 4: rotation
@hidden("rotation_task", "Q1 rotate_batch")
def rotate_other_sizes(ns):
    _check_rotate(ns, B=3, S=17, seed=5)
    x, y = ns["rotate_batch"](torch.zeros(2, 3, 8, 8, dtype=torch.uint8))  # the generator is optional
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (2,): raise Wrong("rotate_batch(images) without a generator must work too")

@hidden("rotation_task", "Q2 Rotation follows the PretextTask contract")
def contract_other_sizes(ns): _check_contract(ns, B=3, S=40, C=128)
