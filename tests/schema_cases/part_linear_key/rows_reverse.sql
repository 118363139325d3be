INSERT INTO carts SELECT seq, seq % 17 FROM seq_1_to_100;
