CREATE TABLE `order` (`select` INT PRIMARY KEY, `my col` VARCHAR(10), `back``tick` INT, `ünïcödé` VARCHAR(5), `from` INT,
  KEY `the index` (`my col`), KEY `key``s` (`back``tick`));
CREATE TABLE `table with spaces` (`id` INT PRIMARY KEY, `o` INT, CONSTRAINT `fk ``quoted``` FOREIGN KEY (`o`) REFERENCES `order` (`select`));
CREATE VIEW `view ``v``` AS SELECT `select`, `my col` FROM `order`;
