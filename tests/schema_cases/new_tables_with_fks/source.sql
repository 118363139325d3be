SET foreign_key_checks=0;
CREATE TABLE a_child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT fk_child FOREIGN KEY (parent_id) REFERENCES z_parent (id));
    CREATE TABLE z_parent (id INT PRIMARY KEY, best_child INT, CONSTRAINT fk_cycle FOREIGN KEY (best_child) REFERENCES a_child (id));
    CREATE TABLE self_ref (id INT PRIMARY KEY, up INT, CONSTRAINT fk_up FOREIGN KEY (up) REFERENCES self_ref (id) ON DELETE SET NULL);
