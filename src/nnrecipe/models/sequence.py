"""Sequence and attention model builders (rnn, lstm, gru, seq2seq, transformer, vit), registered by name."""

BUILDERS: dict = {}
