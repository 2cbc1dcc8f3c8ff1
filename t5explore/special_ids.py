"""The special token ids every subpackage agrees on (T5's convention): the one place they are defined.

The vocabulary trains sentencepiece with these ids and checks them on load (data/vocab.py); objectives pack
with them (objectives/base.py TokenSpace defaults); features weight the loss by `!= PAD_ID`; the model masks
attention by `!= PAD_ID` and decoding stops at EOS_ID. UL2's mode tokens follow at 3, 4, 5 (data/vocab.py).
"""

PAD_ID = 0  # padding, and the decoder's start token (T5 has no BOS)
EOS_ID = 1  # end of every sequence
UNK_ID = 2  # out-of-vocabulary pieces
