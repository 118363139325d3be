INSERT INTO sessions_log SELECT seq, MD5(seq) FROM seq_1_to_200;
