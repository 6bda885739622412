"""dad.lang"""
