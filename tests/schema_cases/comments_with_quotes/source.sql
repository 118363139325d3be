CREATE TABLE t (id INT PRIMARY KEY COMMENT 'the ''id'' \\ backslash', a VARCHAR(20) COMMENT 'say "hi"; -- not a comment')
  COMMENT='table''s comment: 100% \\n';
