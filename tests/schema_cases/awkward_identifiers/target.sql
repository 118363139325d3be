CREATE TABLE `order` (`select` INT PRIMARY KEY, `back``tick` INT, `my col` VARCHAR(5));
